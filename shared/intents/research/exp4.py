from common import *
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.sparse import hstack
import warnings; warnings.filterwarnings('ignore')
C=77
tex=[l.rstrip('\n') for l in open('ex.txt')]; tdev=[l.rstrip('\n') for l in open('dev.txt')]
desc=[l.rstrip('\n') for l in open('desc.txt')]
def ev(P): return (P.argmax(1)==ydev).mean()*100
res={}
for name,vec in [
  ('char_wb2-5',TfidfVectorizer(analyzer='char_wb',ngram_range=(2,5),sublinear_tf=True,lowercase=True)),
  ('char_wb3-5',TfidfVectorizer(analyzer='char_wb',ngram_range=(3,5),sublinear_tf=True)),
  ('word1-2',TfidfVectorizer(analyzer='word',ngram_range=(1,2),sublinear_tf=True)),
  ('word1',TfidfVectorizer(analyzer='word',ngram_range=(1,1),sublinear_tf=True)),
]:
    Xt=vec.fit_transform(tex); Xd=vec.transform(tdev)
    for Cr in [3,10,30,100]:
        m=LogisticRegression(C=Cr,max_iter=3000).fit(Xt,ytr)
        P=m.predict_proba(Xd); res[(name,Cr)]=P
        print(name,Cr,f'{ev(P):.2f}')
    # cosine nn
    S=(Xd@Xt.T).toarray(); 
    best=np.full((len(tdev),C),0.); 
    for c in range(C): best[:,c]=S[:,ytr==c].max(1)
    print(name,'nn-cos',f'{ev(best):.2f}')
np.save('tfidf_probs.npy',res[('char_wb2-5',30)])
